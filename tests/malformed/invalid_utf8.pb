denseÿmodel;

InputLayerinput_1$
batch_input_shape*
ÿÿÿÿÿÿÿÿÿ@
Densedense_1
units

activationrelu"
	
input_1*
Densedense_2
units"
	
dense_1"	
input_1*	
dense_28