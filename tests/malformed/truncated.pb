dense_model;

InputLayerinput_1$
batch_input_shape*
ÿÿÿÿÿÿÿÿÿ@
Densedense_1
un